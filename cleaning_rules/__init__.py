"""cleaning_rules"""
