"""`io.kestra.plugin.terraform.cli.TerraformCLI`: `terraform` commands in the task's working directory."""

from __future__ import annotations

from kestractl.plugin import register
from kestractl.plugins.clitools.base import CommandsTool, container_image


@register
class TerraformCLI(CommandsTool):
    """Run Terraform commands (`terraform init`, `plan`, `apply -auto-approve` …); state and plans stay in the
    working directory unless `outputFiles` stores them."""

    type_name = "io.kestra.plugin.terraform.cli.TerraformCLI"
    properties = {"containerImage": container_image("hashicorp/terraform")}
    tool = "terraform"
    install = "install Terraform (https://developer.hashicorp.com/terraform/install)"
