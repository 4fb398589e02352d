//! Generated-input checks, one test binary: `properties` (the three judges of a spec agree,
//! field by field, against the real API server and the emulator) and `fuzz` (the error
//! classification's fuzz targets; `make fuzz` runs them longer with `fuzz::fuzz_`).

#[path = "../support/mod.rs"]
mod support;

mod fuzz;
mod properties;
