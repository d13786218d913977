//! Summaries (in progress).
