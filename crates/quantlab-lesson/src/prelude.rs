//! Everything a lesson cell needs, in one import:
//! `use quantlab_lesson::prelude::*;` (quantlab's prelude, plus the lesson's
//! modules and types).

pub use quantlab::prelude::*;

pub use crate::lesson::{Comparison, Footprints, Table};
pub use crate::plot::{BarChart, Figure, LineChart};
pub use crate::{data, lesson, plot};
