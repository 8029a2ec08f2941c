//! Kubernetes provider (being written).
