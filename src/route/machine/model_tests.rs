//! Model-based test of the route machine: random sequences of moves, hedges
//! (at the same or another target), withdrawals, leads, won and lost races,
//! failures that move on (an overload, an open breaker that says when it is
//! back) or stop (steer's own error), answers and deadlines, applied to
//! [`Route`] and to a reference model written from its documentation here;
//! their targets, legs, verdicts, waits and steps never differ.

use std::time::Duration;

use proptest::prelude::*;
use steer_actors::{Category, Failure, GiveUp};

use super::*;
use crate::error::FailedRequest;
use crate::model::RequestId;

const TARGETS: [&str; 3] = ["a/m", "b/m", "c/m"];

#[derive(Debug, Clone, Copy)]
enum Failing {
    /// Overloaded: the target's failure, move on.
    Overloaded,
    /// Its breaker is open for this many milliseconds: move on, back then.
    Open(u64),
    /// steer's own error: stop.
    Internal,
}

impl Failing {
    fn error(self) -> Error {
        match self {
            Failing::Overloaded => Error::Failed(Box::new(FailedRequest {
                failure: Failure::new(Category::Overloaded, "p", "x"),
                reason: GiveUp::AttemptsExhausted,
                attempts: 1,
                last: None,
                partial: None,
                spend: Default::default(),
            })),
            Failing::Open(ms) => Error::Rejected {
                provider: "p".into(),
                request_id: RequestId::from("r"),
                rejection: Rejection::Open {
                    retry_in: Duration::from_millis(ms),
                },
                attempts: 0,
                last: None,
                partial: None,
            },
            Failing::Internal => Error::Internal("x".into()),
        }
    }

    fn step(self) -> (&'static str, Option<Duration>) {
        match self {
            Failing::Overloaded => ("overloaded", None),
            Failing::Open(ms) => ("breaker_open", Some(Duration::from_millis(ms))),
            Failing::Internal => ("error", None),
        }
    }

    fn verdict(self) -> Verdict {
        match self {
            Failing::Internal => Verdict::Stop,
            _ => Verdict::MoveOn,
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// Next, with this much time left (milliseconds), if any.
    Next(Option<u64>),
    Hedge(bool),
    WithdrawHedge(usize),
    WithdrawHedges,
    Lead(usize),
    Won(usize),
    LegLost(usize),
    LegFailed(usize, Failing),
    Failed(Failing),
    AnsweredBy(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let failing = prop_oneof![
        Just(Failing::Overloaded),
        (1u64..500).prop_map(Failing::Open),
        Just(Failing::Internal),
    ];
    prop_oneof![
        5 => prop::option::of(0u64..600).prop_map(Op::Next),
        3 => any::<bool>().prop_map(Op::Hedge),
        1 => (0usize..4).prop_map(Op::WithdrawHedge),
        1 => Just(Op::WithdrawHedges),
        1 => (0usize..4).prop_map(Op::Lead),
        1 => (0usize..4).prop_map(Op::Won),
        1 => (0usize..4).prop_map(Op::LegLost),
        3 => ((0usize..4), failing.clone()).prop_map(|(n, f)| Op::LegFailed(n, f)),
        3 => failing.prop_map(Op::Failed),
        1 => (0usize..4).prop_map(Op::AnsweredBy),
    ]
}

type Step = (String, String, Option<Duration>);

/// The reference route.
#[derive(Debug, Default)]
struct Model {
    tried: Vec<String>,
    steps: Vec<Step>,
    current: Option<String>,
    hedges: Vec<String>,
    left: Option<String>,
    waited: bool,
}

/// What `Route::next` answered, comparably.
#[derive(Debug, PartialEq)]
enum Went {
    Go(String, Option<String>),
    Wait(Duration),
    Exhausted(Vec<Step>),
}

fn remove_first(v: &mut Vec<String>, t: &str) -> bool {
    v.iter().position(|x| x == t).map(|i| v.remove(i)).is_some()
}

fn remove_last(v: &mut Vec<String>, t: &str) {
    if let Some(i) = v.iter().rposition(|x| x == t) {
        v.remove(i);
    }
}

impl Model {
    fn untried(&self) -> Option<String> {
        TARGETS
            .iter()
            .find(|t| !self.tried.iter().any(|x| x == *t))
            .map(|t| t.to_string())
    }

    fn legs(&self) -> Vec<String> {
        self.current.iter().chain(&self.hedges).cloned().collect()
    }

    fn next(&mut self, time_left: Option<Duration>) -> Went {
        let Some(target) = self.untried() else {
            let back = self.steps.iter().filter_map(|s| s.2).min();
            if let (Some(back), false) = (back, self.waited) {
                let wait = back + Duration::from_millis(10);
                if time_left.is_none_or(|left| wait < left) {
                    self.waited = true;
                    self.tried.clear();
                    return Went::Wait(wait);
                }
            }
            return Went::Exhausted(std::mem::take(&mut self.steps));
        };
        self.tried.push(target.clone());
        self.current = Some(target.clone());
        Went::Go(target, self.left.clone())
    }

    fn hedge(&mut self, same: bool) -> Option<String> {
        let target = if same {
            self.current.clone()?
        } else {
            let t = self.untried()?;
            self.tried.push(t.clone());
            t
        };
        self.hedges.push(target.clone());
        Some(target)
    }

    fn withdraw_hedge(&mut self, t: &str) {
        remove_last(&mut self.hedges, t);
        if self.current.as_deref() != Some(t) && !self.hedges.iter().any(|h| h == t) {
            remove_last(&mut self.tried, t);
        }
    }

    fn lead(&mut self, t: &str) {
        if self.current.as_deref() == Some(t) || !remove_first(&mut self.hedges, t) {
            return;
        }
        if let Some(before) = self.current.replace(t.to_string()) {
            self.hedges.push(before);
        }
    }

    fn gone(&mut self, t: &str) {
        if !remove_first(&mut self.hedges, t) && self.current.as_deref() == Some(t) {
            self.current = self.hedges.pop();
        }
    }

    fn leg_failed(&mut self, t: &str, f: Failing) -> Verdict {
        let (outcome, back) = f.step();
        self.steps.push((t.to_string(), outcome.to_string(), back));
        self.gone(t);
        if self.current.is_some() {
            return Verdict::Racing;
        }
        self.left = Some(t.to_string());
        f.verdict()
    }

    fn answered_by(&mut self, t: &str) -> Vec<Step> {
        let mut losers: Vec<String> = self.current.take().into_iter().collect();
        losers.append(&mut self.hedges);
        remove_first(&mut losers, t);
        self.steps.push((t.to_string(), "answered".into(), None));
        for l in losers {
            self.steps.push((l, "hedge_lost".into(), None));
        }
        std::mem::take(&mut self.steps)
    }
}

fn steps_of(steps: &[RouteStep]) -> Vec<Step> {
    steps
        .iter()
        .map(|s| (s.target.clone(), s.outcome.clone(), s.back_in))
        .collect()
}

fn in_order(g: &Group, tried: &[ModelId]) -> Option<ModelId> {
    g.pick(tried, |_| true, 0.0).cloned()
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut real = Route::new("g", Group::new(TARGETS).expect("a group"));
    let mut model = Model::default();
    let id = |t: &str| t.parse::<ModelId>().expect("a target");
    for (step, op) in ops.into_iter().enumerate() {
        let said = format!("step {step}: {op:?}");
        let legs = model.legs();
        let leg = |n: usize| (!legs.is_empty()).then(|| legs[n % legs.len()].clone());
        match op {
            Op::Next(left) => {
                let left = left.map(Duration::from_millis);
                let a = match real.next(in_order, left) {
                    Next::Go { target, from } => {
                        Went::Go(target.to_string(), from.map(|f| f.to_string()))
                    }
                    Next::Wait(d) => Went::Wait(d),
                    Next::Exhausted(Error::GroupExhausted { steps, .. }) => {
                        Went::Exhausted(steps_of(&steps))
                    }
                    Next::Exhausted(other) => {
                        return Err(TestCaseError::fail(format!("{said}: {other:?}")))
                    }
                };
                prop_assert_eq!(a, model.next(left), "{}", said);
            }
            Op::Hedge(same) => {
                let a = real.hedge(in_order, same).map(|t| t.to_string());
                prop_assert_eq!(a, model.hedge(same), "{}", said);
            }
            Op::WithdrawHedge(n) => {
                if let Some(h) =
                    (!model.hedges.is_empty()).then(|| model.hedges[n % model.hedges.len()].clone())
                {
                    real.withdraw_hedge(&id(&h));
                    model.withdraw_hedge(&h);
                }
            }
            Op::WithdrawHedges => {
                real.withdraw_hedges();
                for h in model.hedges.clone() {
                    model.withdraw_hedge(&h);
                }
            }
            Op::Lead(n) => {
                if let Some(t) = leg(n) {
                    real.lead(&id(&t));
                    model.lead(&t);
                }
            }
            Op::Won(n) => {
                if let Some(t) = leg(n) {
                    real.won(&id(&t));
                    model.lead(&t);
                    for h in std::mem::take(&mut model.hedges) {
                        model.steps.push((h, "hedge_lost".into(), None));
                    }
                }
            }
            Op::LegLost(n) => {
                if let Some(t) = leg(n) {
                    real.leg_lost(&id(&t), "stream_interrupted");
                    model
                        .steps
                        .push((t.clone(), "stream_interrupted".into(), None));
                    model.gone(&t);
                }
            }
            Op::LegFailed(n, f) => {
                if let Some(t) = leg(n) {
                    let a = real.leg_failed(&id(&t), &f.error());
                    prop_assert_eq!(a, model.leg_failed(&t, f), "{}", said);
                }
            }
            Op::Failed(f) => {
                let a = real.failed(&f.error());
                let b = match model.current.clone() {
                    Some(t) => model.leg_failed(&t, f),
                    None => f.verdict(),
                };
                prop_assert_eq!(a, b, "{}", said);
            }
            Op::AnsweredBy(n) => {
                if let Some(t) = leg(n) {
                    let a = steps_of(&real.answered_by(&id(&t)));
                    prop_assert_eq!(a, model.answered_by(&t), "{}", said);
                }
            }
        }
        prop_assert_eq!(real.legs(), model.legs().len(), "{}", said);
        prop_assert_eq!(
            real.current().map(ToString::to_string),
            model.current.clone(),
            "{}",
            said
        );
        prop_assert_eq!(steps_of(real.steps()), model.steps.clone(), "{}", said);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn the_route_never_differs_from_its_model(ops in prop::collection::vec(op(), 1..60)) {
        run(ops)?;
    }
}
