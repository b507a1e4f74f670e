//! Opening a TCP connection to a Livy server. Every address its name resolves to
//! is tried in turn, each with an equal share of what is left of the connect
//! timeout, so an address that never answers (a blackholed AAAA record before a
//! working A record) costs its share, not the whole timeout. (Tokio's own
//! `TcpStream::connect` gives the first address all the time there is.)

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{lookup_host, TcpStream};
use tokio::time::Instant;

/// A connection to `authority` (`host:port`), within `timeout` (the name's
/// lookup included).
pub async fn connect(authority: &str, timeout: Duration) -> io::Result<TcpStream> {
    let deadline = Instant::now() + timeout;
    let addresses: Vec<SocketAddr> = tokio::time::timeout_at(deadline, lookup_host(authority))
        .await
        .map_err(|_| timed_out("the name's lookup took the whole connect timeout".into()))??
        .collect();
    connect_any(&addresses, deadline).await
}

/// A connection to the first of `addresses` that answers, each tried with an
/// equal share of the time left until `deadline`; the last failure otherwise.
pub async fn connect_any(addresses: &[SocketAddr], deadline: Instant) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the name has no address");
    for (tried, address) in addresses.iter().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let share = left / u32::try_from(addresses.len() - tried).unwrap_or(u32::MAX);
        match tokio::time::timeout(share, TcpStream::connect(address)).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(error)) => last = io::Error::new(error.kind(), format!("{address}: {error}")),
            Err(_) => last = timed_out(format!("{address}: no answer within {share:?}")),
        }
    }
    Err(last)
}

fn timed_out(reason: String) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::{TcpListener, TcpSocket};

    /// A loopback address that takes no connection: a listener whose accept queue
    /// (of length 0) is already full, so the kernel drops further SYNs, as a
    /// blackholed address does. Held while the test runs.
    async fn blackhole() -> (SocketAddr, TcpListener, TcpStream) {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(0).unwrap();
        let address = listener.local_addr().unwrap();
        let filler = TcpStream::connect(address).await.unwrap();
        (address, listener, filler)
    }

    #[tokio::test]
    async fn an_address_that_never_answers_costs_only_its_share() {
        let (hole, _listener, _filler) = blackhole().await;
        // Proof that it is one: a connection to it alone gets nowhere.
        let alone = connect_any(&[hole], Instant::now() + Duration::from_millis(300)).await;
        assert_eq!(alone.unwrap_err().kind(), io::ErrorKind::TimedOut);

        let good = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let good_address = good.local_addr().unwrap();
        // Tokio's connect would spend the whole timeout on the first address.
        let stream = connect_any(
            &[hole, good_address],
            Instant::now() + Duration::from_secs(2),
        )
        .await
        .expect("the second address, within its share");
        assert_eq!(stream.peer_addr().unwrap(), good_address);
    }

    #[tokio::test]
    async fn refused_addresses_are_skipped_and_the_last_failure_is_told() {
        let closed = {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            listener.local_addr().unwrap()
        };
        let good = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(2);
        let stream = connect_any(&[closed, good.local_addr().unwrap()], deadline)
            .await
            .unwrap();
        assert_eq!(stream.peer_addr().unwrap(), good.local_addr().unwrap());
        let error = connect_any(&[closed], deadline).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused);
        assert!(error.to_string().contains(&closed.to_string()), "{error}");
        let none = connect_any(&[], deadline).await.unwrap_err();
        assert_eq!(none.kind(), io::ErrorKind::NotFound);
    }
}
