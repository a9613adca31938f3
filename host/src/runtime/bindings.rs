//! Host bindings for the `sandmap:op/op-component` world (`wit/op.wit`).

wasmtime::component::bindgen!({
    world: "op-component",
    path: "../wit",
    // Host functions may trap the guest (an op that keeps emitting after its step failed).
    imports: { default: trappable },
    // A hasher is a host value in the step's resource table.
    with: { "sandmap:op/digest.hasher": super::digest::Hasher },
    // A step's inputs are lent to the guest, not copied first: a collect's input is the
    // text of every clone's result (12.5 MB for 100,000 files).
    ownership: Borrowing { duplicate_if_necessary: true },
});
