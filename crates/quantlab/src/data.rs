//! Seeded sample data for the lesson: reproducible random tensors.
