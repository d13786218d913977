//! The simulated switch (in progress).
