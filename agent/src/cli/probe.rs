//! `sonde probe URL`: one probe, shown for people. (Being written.)

/// Arguments of `sonde probe`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `sonde probe`.
pub fn run(_args: Args) -> anyhow::Result<u8> {
    anyhow::bail!("sonde probe is not implemented yet")
}
