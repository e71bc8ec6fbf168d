from socialhub.kit.cli import run_service
from socialhub.posts.settings import PostsSettings

run_service(
    "posts",
    settings=PostsSettings(),
    app_factory="socialhub.posts.app:create_app",
    migrations_package="socialhub.posts",
)
