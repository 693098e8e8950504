//! The console's measurements pages: `arbiter replay` reports drawn as charts.
