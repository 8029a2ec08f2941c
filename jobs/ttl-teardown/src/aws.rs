//! AWS provider (being written).
