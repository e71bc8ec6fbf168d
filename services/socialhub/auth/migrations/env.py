from socialhub.auth.models import Base
from socialhub.kit.events.outbox import metadata as outbox_metadata
from socialhub.kit.migrations import run_env

run_env([Base.metadata, outbox_metadata])
