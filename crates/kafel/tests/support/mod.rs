//! Helpers shared by the tests and the step-count benchmark.

pub mod expect;
