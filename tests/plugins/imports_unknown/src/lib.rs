//! A component that imports `evil:nope/thing`, which no host provides.
#![allow(missing_docs)]

wit_bindgen::generate!({
    inline: "
        package evil:nope;
        interface thing { poke: func(); }
        world unknown { import thing; export run: func(); }
    ",
});

struct Unknown;

impl Guest for Unknown {
    fn run() {
        evil::nope::thing::poke();
    }
}

export!(Unknown);
