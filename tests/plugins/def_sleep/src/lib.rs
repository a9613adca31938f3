//! `def_sleep`: an op whose `definition()` sleeps forever inside a host call (WASI clock
//! subscriptions of an hour, again and again), where no epoch deadline reaches.

use sandmap_guest::prelude::*;

struct DefSleep;

impl Op for DefSleep {
    type Config = NoConfig;
    type Output = Value;

    #[allow(unreachable_code)]
    fn definition() -> OpDefinition {
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
        OpDefinition::new("def_sleep")
    }

    fn run(_ctx: &mut Context, _config: NoConfig) -> Result<Value, OpError> {
        Ok(Value::Null)
    }
}

export_op!(DefSleep);
