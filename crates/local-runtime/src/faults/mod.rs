//! Fault injection, kept off the normal path: a proxy between the functions and AWS that fails
//! a share of the calls ([`proxy`]), and invocation answers that get lost on the way back to the
//! event source mapping, as when a function crashes after its effects ([`lost_answers`]).

pub mod lost_answers;
pub mod proxy;

pub use lost_answers::{Acknowledgements, LostAnswers};
pub use proxy::{FaultCounts, FaultProxy, FaultRates};
