//! What steer shows of itself: the spans of requests and attempts with the
//! OpenTelemetry GenAI attributes ([`trace`]). The metrics families live with
//! the actors that count them (`steer_actors::telemetry::meters`); the HTTP endpoint that
//! serves them is `runtime::http`.

pub mod trace;
