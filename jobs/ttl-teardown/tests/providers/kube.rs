// Kubernetes provider and lease tests (being written).
