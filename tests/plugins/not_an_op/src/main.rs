//! A plain WASI command: a valid component, but of the `wasi:cli/command` world, not a sandmap op.

fn main() {
    println!("I am not an op");
}
