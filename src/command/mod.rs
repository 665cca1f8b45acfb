//! The command line: clap's arguments (`cli`), resolved and checked into a
//! `Plan` before anything happens (`plan`), and carried out (`run`).

pub mod argv;
pub mod capture;
pub mod cli;
pub mod entry;
pub mod outfiles;
pub mod plan;
pub mod run;
pub mod watch;
