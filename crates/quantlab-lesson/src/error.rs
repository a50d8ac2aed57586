//! The lesson crate's error: the library's, or a figure that could not be drawn.

/// The library's error type, named short for the constructors in this crate.
pub(crate) use quantlab::Error as Core;

/// What went wrong in a lesson helper.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An error of the library (bad data, a bad spec, ...), as it reported it.
    #[error(transparent)]
    Quantlab(#[from] quantlab::Error),
    /// A figure that could not be drawn (see [`crate::plot`]).
    #[error("could not draw the figure `{title}`: {reason}")]
    Plot {
        /// The figure's title.
        title: String,
        /// What went wrong.
        reason: String,
    },
}

/// The lesson crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
