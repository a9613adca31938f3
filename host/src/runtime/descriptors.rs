//! The process's file-descriptor budget: the soft `RLIMIT_NOFILE` raised to its hard limit at
//! start-up, less what the host keeps for itself, shared out between the sandboxes that can be
//! alive at once. `max_open_files` must fit a sandbox's share, so that no step can use up
//! descriptors another one (or the host) needs.

/// Descriptors kept for the host itself: the run store and its WAL, the compile cache, held
/// grant directories, stdio, the epoll and eventfds of its threads.
const RESERVED_FOR_HOST: u64 = 256;

/// Raise the soft open-file limit to the hard one and return the soft limit in force (`None`
/// where it is unlimited or cannot be read).
pub fn raise_open_file_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let limit = getrlimit(Resource::Nofile);
        if limit.current != limit.maximum {
            let raised = Rlimit { current: limit.maximum, maximum: limit.maximum };
            if setrlimit(Resource::Nofile, raised).is_ok() {
                return limit.maximum;
            }
        }
        limit.current
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Open files each of `sandboxes` sandboxes may hold when the process may open `soft_limit`.
pub fn per_sandbox(soft_limit: Option<u64>, sandboxes: usize) -> u64 {
    match soft_limit {
        None => u64::MAX,
        Some(limit) => limit.saturating_sub(RESERVED_FOR_HOST) / (sandboxes.max(1) as u64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_shared_between_sandboxes_after_the_hosts_own() {
        assert_eq!(per_sandbox(Some(20_000), 3), (20_000 - 256) / 3);
        assert_eq!(per_sandbox(Some(100), 3), 0);
        assert_eq!(per_sandbox(None, 3), u64::MAX);
    }
}
