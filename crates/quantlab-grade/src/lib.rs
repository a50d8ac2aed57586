//! `quantlab-grade`: release, grade and validate the quantlab lesson notebook.
//!
//! The instructor keeps one source notebook with solutions and hidden tests, marked the
//! nbgrader way (schema 3). [`release`] makes the learners' copy; [`grade`] runs a
//! submission through the real `rust` kernel (evcxr) with the hidden tests put back and
//! scores each question; [`validate`] runs a learner's visible tests.
#![warn(missing_docs)]

pub mod feedback;
pub mod grade;
pub mod gradebook;
pub mod kernel;
pub mod lesson;
pub mod markers;
pub mod notebook;
pub mod plan;
pub mod pool;
pub mod release;
pub mod report;
pub mod submission;
pub mod validate;
