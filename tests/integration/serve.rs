//! Serving (filled below).
