//! Inline plots for the lesson (plotters, SVG, shown by evcxr).
