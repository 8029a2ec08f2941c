//! Run lock on a Kubernetes Lease (being written).
