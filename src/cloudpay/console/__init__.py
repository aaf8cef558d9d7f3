"""The operator console and merchant portal, mounted at `/console` (server-rendered, HTMX).

Other modules use these names only: `create_console` (main mounts it), `create_user` (the
`cloudpay user create` command), `create_demo_users` (the demo city), `Role`.
"""

from cloudpay.console.api import create_console
from cloudpay.console.model import Role
from cloudpay.console.operations import create_demo_users
from cloudpay.console.service import create_user

__all__ = ["Role", "create_console", "create_demo_users", "create_user"]
