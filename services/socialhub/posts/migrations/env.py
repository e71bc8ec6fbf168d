from socialhub.kit.events.outbox import metadata as outbox_metadata
from socialhub.kit.migrations import run_env
from socialhub.posts.models import Base

run_env([Base.metadata, outbox_metadata])
