//! Host bindings for the `sandmap:op/op-component` world (`wit/op.wit`).

wasmtime::component::bindgen!({
    world: "op-component",
    path: "../wit",
    // Host functions may trap the guest (an op that keeps emitting after its step failed).
    imports: { default: trappable },
});
