

mod check;
mod classify;
mod demo;
mod fetch;
mod publish;
mod reload;
mod schedule;
mod serve;
mod sources;
mod store;
mod support;
