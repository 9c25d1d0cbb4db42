//! Reference limit-order-book matching engine instrumented with gmc-client.

fn main() {}
