"""The Faust worker that applies the rules to the topics."""
