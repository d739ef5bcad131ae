//! The execution machinery the actors run on, fenced from the domain: an actor
//! run by the task that awaits it ([`in_place`]) and the wakes it owns
//! (`own_wakes`), an attempt's future as its actor polls it ([`guarded`]), spans kept only when
//! wanted ([`spans`]), clock arithmetic that saturates ([`clock`]), and the
//! supervision of actors whose handlers panic (`supervise`), and a yield only
//! a multi-thread scheduler wants ([`scheduler`]).

pub mod clock;
pub mod guarded;
pub mod in_place;
pub mod own_wakes;
pub mod scheduler;
pub mod spans;
pub(crate) mod supervise;
