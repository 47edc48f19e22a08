//! Pure planners for the cluster manager: given what the nodes reported, decide what to send.
//! No sockets, clocks or randomness here, so every plan is unit-tested.

pub mod create;
