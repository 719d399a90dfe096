//! `firth serve`: flags in, `firth_serve::serve` out.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Vector files, n-gram models (ARPA or firth binary), model directories (lm, tag,
    /// classify, translate) and run directories (metrics.csv, gradients-*.csv) to show.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Port to listen on (0: any free port; the address is printed).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Address to listen on. The default serves this machine only; anything else lets other
    /// machines read the models.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    host: IpAddr,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    firth_serve::serve(firth_serve::Options {
        paths: a.paths,
        addr: SocketAddr::new(a.host, a.port),
    })
}
