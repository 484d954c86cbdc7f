//! The `metrics` feature: `publish_metrics()` hands the same numbers as `stats()` to whatever
//! recorder is installed (here a small capturing one, scoped to the test thread).
#![cfg(all(feature = "metrics", feature = "udp"))]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, Key, KeyName, Metadata, Recorder, SharedString,
    Unit,
};
use sip_transport::prelude::*;
use sip_transport_testkit::options_request;

/// Keeps the last value of each metric, by name and labels.
#[derive(Default)]
struct Capture {
    values: Mutex<HashMap<String, Arc<Cell>>>,
}

#[derive(Default)]
struct Cell(AtomicU64);

impl CounterFn for Cell {
    fn increment(&self, v: u64) {
        self.0.fetch_add(v, Ordering::Relaxed);
    }
    fn absolute(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }
}

impl GaugeFn for Cell {
    fn increment(&self, _: f64) {}
    fn decrement(&self, _: f64) {}
    fn set(&self, v: f64) {
        self.0.store(v as u64, Ordering::Relaxed);
    }
}

impl Capture {
    fn cell(&self, key: &Key) -> Arc<Cell> {
        let mut labels: Vec<String> = key
            .labels()
            .filter(|l| l.key() == "kind")
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        labels.sort();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        let mut v = self.values.lock().expect("lock");
        Arc::clone(v.entry(name).or_default())
    }

    fn get(&self, name: &str) -> Option<u64> {
        let v = self.values.lock().expect("lock");
        v.get(name).map(|c| c.0.load(Ordering::Relaxed))
    }
}

impl Recorder for Capture {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.cell(key))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.cell(key))
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

#[tokio::test]
async fn publish_metrics_exports_the_stats() {
    let (manager, _events) = TransportManager::new(ManagerConfig::default()).expect("manager");
    manager
        .add(
            sip_transport::bind_udp(([127, 0, 0, 1], 0))
                .await
                .expect("udp"),
        )
        .expect("add");
    let (peer, _peer_events) = sip_transport::bind_udp(([127, 0, 0, 1], 0))
        .await
        .expect("peer");
    for n in 0..3 {
        let req = options_request("sip:x@127.0.0.1", "UDP", "127.0.0.1:5099", n);
        manager
            .send_message(&req, SendTo::address(TransportKind::Udp, peer.local_addr()))
            .await
            .expect("sent");
    }
    let stats = manager.stats();
    let capture = Capture::default();
    metrics::with_local_recorder(&capture, || manager.publish_metrics());
    assert_eq!(
        capture.get("sip_manager_requests_sent{}"),
        Some(stats.requests_sent)
    );
    assert_eq!(stats.requests_sent, 3);
    assert_eq!(
        capture.get("sip_transport_messages_sent{kind=udp}"),
        Some(stats.total.messages_sent)
    );
    assert_eq!(
        capture.get("sip_transport_connections_open{kind=udp}"),
        Some(0)
    );
    assert_eq!(capture.get("sip_manager_targets_held_back{}"), Some(0));
    manager.close().await;
}
