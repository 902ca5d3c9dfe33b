"""What became of learning records, read back from the topics the pipeline and the sink write."""
