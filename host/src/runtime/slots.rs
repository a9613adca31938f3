//! A counting semaphore over the pooling allocator's instance slots: a caller that would exceed
//! the pool waits for a slot instead of failing to instantiate. (Hand-rolled from a Mutex and a
//! Condvar: std has no semaphore, and this is its whole use.)

use std::sync::{Condvar, Mutex, PoisonError};

/// Slots that may be in use at once.
#[derive(Debug)]
pub struct Slots {
    free: Mutex<usize>,
    freed: Condvar,
}

/// A held slot, given back when dropped (also on unwinding).
#[derive(Debug)]
pub struct Slot<'a>(&'a Slots);

impl Slots {
    /// `count` slots.
    pub fn new(count: usize) -> Self {
        Self { free: Mutex::new(count.max(1)), freed: Condvar::new() }
    }

    /// Wait for a free slot.
    pub fn acquire(&self) -> Slot<'_> {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        while *free == 0 {
            free = self.freed.wait(free).unwrap_or_else(PoisonError::into_inner);
        }
        *free -= 1;
        Slot(self)
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        self.0.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_third_caller_waits_for_one_of_two_slots() {
        let slots = Slots::new(2);
        let a = slots.acquire();
        let _b = slots.acquire();
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| {
                let _c = slots.acquire();
            });
            std::thread::sleep(std::time::Duration::from_millis(20));
            assert!(!waiter.is_finished());
            drop(a);
            waiter.join().unwrap();
        });
    }
}
