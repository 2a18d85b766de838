// Port of Litestar's `test_raises_when_decorator_called_without_callable`: `listener("test_even")(True)`
// raises `ImproperlyConfiguredException`. Here the attribute on something that is not a function
// is a compile error.
use emitter::{listener, Event};

#[derive(Event)]
pub struct TestEvent {
    pub n: u32,
}

#[listener(events = [TestEvent])]
static NOT_CALLABLE: bool = true;

fn main() {}
