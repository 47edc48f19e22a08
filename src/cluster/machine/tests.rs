//! Unit tests of the cluster machine.
