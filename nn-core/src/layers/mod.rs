//! Built-in layers, one file each: parameters, forward, backward and tests side by side.

mod dense;

pub use dense::Dense;
