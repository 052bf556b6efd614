//! Placeholder facade; filled in below.
