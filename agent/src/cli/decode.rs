//! `sonde decode`: wire files to JSON Lines or CSV. (Being written.)

/// Arguments of `sonde decode`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `sonde decode`.
pub fn run(_args: Args) -> anyhow::Result<u8> {
    anyhow::bail!("sonde decode is not implemented yet")
}
