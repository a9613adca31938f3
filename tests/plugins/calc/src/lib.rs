//! `calc`: arithmetic on whole numbers, for the zipped and joined maps of Dagster's
//! `test_downstream_multiple_dynamic.py`. Returns `(base × multiplier − subtract) ^ exponent`
//! (each optional input defaults to leave the value as it is), or, given `inputs` (lists), the sum
//! of every number in them.

use sandmap_guest::prelude::*;

struct Calc;

impl Op for Calc {
    type Config = NoConfig;
    type Output = Value;

    fn definition() -> OpDefinition {
        OpDefinition::new("calc")
            .description("base × multiplier − subtract, to the power exponent; or the sum of lists")
            .optional_input("base", "a number")
            .optional_input("multiplier", "a number (1 if not given)")
            .optional_input("subtract", "a number (0 if not given)")
            .optional_input("exponent", "a number (1 if not given)")
            .optional_input("inputs", "a list of numbers, summed")
            .optional_input("more", "another list of numbers, summed with inputs")
    }

    fn run(ctx: &mut Context, _config: NoConfig) -> Result<Value, OpError> {
        let list = |name: &str| -> Result<i64, OpError> {
            Ok(ctx.input_opt::<Vec<i64>>(name)?.unwrap_or_default().iter().sum())
        };
        if ctx.input_opt::<Value>("inputs")?.is_some() {
            return Ok(json!(list("inputs")? + list("more")?));
        }
        let number = |name: &str, default: i64| -> Result<i64, OpError> { Ok(ctx.input_opt(name)?.unwrap_or(default)) };
        let value = number("base", 0)? * number("multiplier", 1)? - number("subtract", 0)?;
        let exponent = u32::try_from(number("exponent", 1)?).map_err(|_| OpError::new("exponent must be >= 0"))?;
        value.checked_pow(exponent).map(|v| json!(v)).ok_or_else(|| OpError::new("overflow"))
    }
}

export_op!(Calc);
