"""Kestra's CLI-tool plugins as script tasks that need their tool on PATH: dbt (`io.kestra.plugin.dbt.cli.*`),
Terraform (`io.kestra.plugin.terraform.cli.TerraformCLI`) and Ansible (`io.kestra.plugin.ansible.cli.AnsibleCLI`)."""

from kestractl.plugins.clitools import ansible, dbt, terraform

__all__ = ["ansible", "dbt", "terraform"]
