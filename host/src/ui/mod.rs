//! `sandmap ui`: a web viewer of the run store. It shows every run live (any process's, through
//! the store), a mapped op as one node with counts per status, its clones a page at a time,
//! and re-executes or resumes runs by starting the same CLI commands as child processes. It
//! never runs WebAssembly itself.
//!
//! - [`server`] binds, guards and routes; [`guard`] holds the security rules (loopback, Host,
//!   same-origin POST with a token, CSP).
//! - [`api`] is the JSON API, [`pages`] the HTML pages (maud, escaped by default), [`graph`]
//!   the op graph as SVG, [`render`] what an op wrote made safe to show.
//! - [`live`] follows the store and streams server-sent events numbered by the store's events.
//! - [`actions`] starts `sandmap reexecute` and `sandmap resume`.

mod actions;
mod api;
mod db;
mod graph;
mod guard;
mod live;
mod pages;
mod render;
mod server;

pub use server::{UiError, UiOptions, serve};
