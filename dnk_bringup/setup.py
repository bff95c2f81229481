from glob import glob

from setuptools import find_packages, setup

package_name = "dnk_bringup"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        ("share/" + package_name + "/config", glob("config/*.yaml")),
        ("share/" + package_name + "/launch", glob("launch/*.launch.py")),
        ("share/" + package_name + "/models", glob("models/*.onnx") + glob("models/*.json") + glob("models/*.npz")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="DNK developers",
    maintainer_email="dev@dnk.invalid",
    description="DNK launch files, configs, simulated Gen3, bag tools",
    license="Apache-2.0",
    tests_require=["pytest"],
    entry_points={
        "console_scripts": [
            "bag_record = dnk_bringup.bag_record:main",
            "bag_replay = dnk_bringup.bag_replay:main",
            "sim_gen3 = dnk_bringup.sim_gen3:main",
            "dnk_demo = dnk_bringup.demo:main",
            "dnk-replay = dnk_bringup.decision_replay:main",
        ],
    },
)
