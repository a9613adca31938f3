//! Paths of the test plugins, built for wasm32-wasip2 by this crate's build script.

include!(concat!(env!("OUT_DIR"), "/programs.rs"));
