#include "cli/app.hpp"

int main(int argc, char** argv) {
    return llm_proxy::cli::run_cli(argc, argv);
}
