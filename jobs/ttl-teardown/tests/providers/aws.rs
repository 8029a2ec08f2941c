// AWS provider tests (being written).
