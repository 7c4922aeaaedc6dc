

mod check;
mod classify;
mod fetch;
mod publish;
mod serve;
mod sources;
mod store;
mod support;
