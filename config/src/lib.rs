//! sonde's configuration: TOML → raw structs → a validated plan.
#![forbid(unsafe_code)]
